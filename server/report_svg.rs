//! Charts as SVG text for the reports of the command-line tools (`simulate --plot`, and
//! matchup tables): line and bar chart panels with round-number axes, gridlines and a legend,
//! a heat map on a diverging colour scale, and a document that stacks panels under one title.
//! Pure functions of their input, with nothing beyond the standard library: the same data
//! always gives the same text.
//!
//! Every panel is a `<g class="panel">` opening with a `<title>` and a heading; its axes are
//! drawn in a `<g class="axis">` and its legend in a `<g class="legend">`.

use std::fmt::Write as _;

/// Width of every document, in pixels.
pub const WIDTH: f64 = 960.0;

const LEFT: f64 = 78.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 44.0;
const BOTTOM: f64 = 58.0;
const LEGEND_WIDTH: f64 = 200.0;
const LEGEND_ROW: f64 = 18.0;
const PLOT_MIN_HEIGHT: f64 = 220.0;
/// Approximate width of one character of 11-pixel text.
const CHAR_WIDTH: f64 = 6.6;
/// Lines and swatches of no series in particular (the style entries of a legend).
const NEUTRAL: &str = "#555555";

/// One line of a line chart.
#[derive(Clone, Debug)]
pub struct Series {
    pub name: String,
    /// Any SVG colour (`#3060c0`).
    pub color: String,
    /// One value per x label; `None` leaves a gap.
    pub values: Vec<Option<f64>>,
    /// Drawn dashed: the second data set of a comparison.
    pub dashed: bool,
}

/// A line chart panel: one line per series over the x labels.
#[derive(Clone, Copy, Debug)]
pub struct LineChart<'a> {
    pub title: &'a str,
    pub x_title: &'a str,
    pub y_title: &'a str,
    pub x_labels: &'a [String],
    pub series: &'a [Series],
    /// What solid and what dashed lines stand for, said in the legend (when any series is
    /// dashed).
    pub line_styles: Option<(&'a str, &'a str)>,
}

/// One series of bars of a bar chart.
#[derive(Clone, Debug)]
pub struct Bars {
    pub name: String,
    pub color: String,
    /// One value per x label.
    pub values: Vec<f64>,
}

/// A bar chart panel: for each x label, one bar per series side by side.
#[derive(Clone, Copy, Debug)]
pub struct BarChart<'a> {
    pub title: &'a str,
    pub x_title: &'a str,
    pub y_title: &'a str,
    pub x_labels: &'a [String],
    pub bars: &'a [Bars],
}

/// One axis of a heat map: its title and one label per row or column.
#[derive(Clone, Copy, Debug)]
pub struct Axis<'a> {
    pub title: &'a str,
    pub labels: &'a [String],
}

/// A part of a document: a chart with its heading, `height` pixels tall, [`WIDTH`] wide.
#[derive(Clone, Debug)]
pub struct Panel {
    title: String,
    height: f64,
    body: String,
}

impl Panel {
    pub fn height(&self) -> f64 {
        self.height
    }
}

/// `text` made safe for XML text and attribute values: `&`, `<`, `>`, `"` and `'` escaped,
/// and control characters XML does not allow dropped.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 => {}
            c => out.push(c),
        }
    }
    out
}

/// Between 4 and 6 evenly spaced round values (a step of 1, 2, 2.5 or 5 times a power of
/// ten) whose first is at most `min` and whose last at least `max`. An empty or degenerate
/// range is widened first; values that are not finite count as 0.
pub fn nice_ticks(min: f64, max: f64) -> Vec<f64> {
    let finite = |v: f64| if v.is_finite() { v } else { 0.0 };
    let (mut lo, mut hi) = (finite(min), finite(max));
    if lo > hi {
        std::mem::swap(&mut lo, &mut hi);
    }
    if hi - lo < f64::EPSILON * hi.abs().max(lo.abs()).max(1.0) * 16.0 {
        let pad = if hi == 0.0 { 1.0 } else { hi.abs() * 0.5 };
        if lo >= 0.0 && lo - pad < 0.0 {
            lo = 0.0;
            hi += pad;
        } else {
            lo -= pad;
            hi += pad;
        }
    }
    let range = hi - lo;
    // The first candidate step gives at least ten intervals; steps then grow by at most
    // twice, so the first one that gives six ticks or fewer gives four or more.
    let start = (range / 10.0).log10().floor() as i32;
    for exponent in start..start.saturating_add(8) {
        let power = 10f64.powi(exponent);
        for mantissa in [1.0, 2.0, 2.5, 5.0] {
            let step = mantissa * power;
            let first = (lo / step + 1e-9).floor();
            let last = (hi / step - 1e-9).ceil();
            if last - first <= 5.0 {
                return (first as i64..=last as i64)
                    .map(|i| clean(i as f64 * step))
                    .collect();
            }
        }
    }
    vec![lo, hi]
}

/// `value` without the noise of binary fractions (0.30000000000000004 as 0.3) or a sign on 0.
fn clean(value: f64) -> f64 {
    if value.abs() >= 1e6 {
        return value;
    }
    let rounded = (value * 1e9).round() / 1e9;
    if rounded == 0.0 { 0.0 } else { rounded }
}

/// Decimals needed to print multiples of `step` exactly (at most 6).
fn decimals_for(step: f64) -> usize {
    (0..6)
        .find(|d| {
            let scaled = step * 10f64.powi(*d as i32);
            (scaled - scaled.round()).abs() < 1e-6 * scaled.abs().max(1.0)
        })
        .unwrap_or(6)
}

/// A tick's label: thousands as `k` and millions as `M` when the step is that large.
pub fn tick_label(value: f64, step: f64) -> String {
    let (scale, suffix) = if step.abs() >= 1e6 {
        (1e6, "M")
    } else if step.abs() >= 1e3 {
        (1e3, "k")
    } else {
        (1.0, "")
    };
    if clean(value) == 0.0 {
        return "0".into();
    }
    let decimals = decimals_for(step / scale);
    format!("{:.*}{suffix}", decimals, clean(value / scale))
}

/// A value printed in a cell: whole numbers as such, others with one decimal.
fn cell_value(value: f64, suffix: &str) -> String {
    let value = clean(value);
    if (value - value.round()).abs() < 1e-9 || value.abs() >= 100.0 {
        format!("{:.0}{}", value, escape(suffix))
    } else {
        format!("{:.1}{}", value, escape(suffix))
    }
}

/// Every `n`th label is shown, so that labels of `longest` characters do not overlap in
/// `width` pixels.
fn label_every(count: usize, longest: usize, width: f64) -> usize {
    let needed = (longest as f64 * CHAR_WIDTH + 10.0) * count as f64;
    ((needed / width.max(1.0)).ceil() as usize).max(1)
}

fn longest(labels: &[String]) -> usize {
    labels.iter().map(|l| l.chars().count()).max().unwrap_or(0)
}

/// How an entry of a legend is marked.
#[derive(Clone, Copy)]
enum Mark {
    Line { dashed: bool },
    Box,
}

struct Entry {
    label: String,
    color: String,
    mark: Mark,
}

/// A legend box at (`x`, `y`): each entry's mark and label, one per row. Returns the SVG
/// and the box's height.
fn legend(x: f64, y: f64, entries: &[Entry]) -> (String, f64) {
    let height = entries.len() as f64 * LEGEND_ROW + 12.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r##"<g class="legend" font-size="11"><rect x="{x:.1}" y="{y:.1}" width="{LEGEND_WIDTH:.1}" height="{height:.1}" fill="white" stroke="#999999"/>"##
    );
    for (i, entry) in entries.iter().enumerate() {
        let row = y + 6.0 + i as f64 * LEGEND_ROW + LEGEND_ROW / 2.0;
        let color = escape(&entry.color);
        match entry.mark {
            Mark::Line { dashed } => {
                let dash = if dashed {
                    r#" stroke-dasharray="6 4""#
                } else {
                    ""
                };
                let _ = write!(
                    svg,
                    r#"<line x1="{:.1}" y1="{row:.1}" x2="{:.1}" y2="{row:.1}" stroke="{color}" stroke-width="2.5"{dash}/>"#,
                    x + 8.0,
                    x + 34.0
                );
            }
            Mark::Box => {
                let _ = write!(
                    svg,
                    r#"<rect x="{:.1}" y="{:.1}" width="18" height="10" fill="{color}"/>"#,
                    x + 10.0,
                    row - 5.0
                );
            }
        }
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
            x + 42.0,
            row + 4.0,
            escape(&entry.label)
        );
    }
    svg.push_str("</g>");
    (svg, height)
}

/// The plot area of a chart panel and its y scale.
struct Frame {
    x0: f64,
    x1: f64,
    y0: f64,
    y1: f64,
    ticks: Vec<f64>,
}

impl Frame {
    fn new(height: f64, values: impl Iterator<Item = f64>) -> Frame {
        let (mut lo, mut hi) = (0.0f64, 0.0f64);
        for v in values.filter(|v| v.is_finite()) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        Frame {
            x0: LEFT,
            x1: WIDTH - RIGHT - LEGEND_WIDTH - 14.0,
            y0: TOP,
            y1: height - BOTTOM,
            ticks: nice_ticks(lo, hi),
        }
    }

    fn y(&self, value: f64) -> f64 {
        let lo = self.ticks.first().copied().unwrap_or(0.0);
        let hi = self.ticks.last().copied().unwrap_or(1.0);
        let span = if hi > lo { hi - lo } else { 1.0 };
        self.y1 - (self.y1 - self.y0) * (value - lo) / span
    }

    /// Gridlines, then the axes: lines, tick labels, the x labels at `xs`, and the titles.
    fn axes(&self, x_labels: &[String], xs: &[f64], x_title: &str, y_title: &str) -> String {
        let mut svg = String::from(r##"<g class="grid" stroke="#e4e4e4" stroke-width="1">"##);
        for tick in &self.ticks {
            let y = self.y(*tick);
            let _ = write!(
                svg,
                r#"<line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}"/>"#,
                self.x0, self.x1
            );
        }
        svg.push_str("</g>");
        let step = match self.ticks.as_slice() {
            [a, b, ..] => b - a,
            _ => 1.0,
        };
        let _ = write!(
            svg,
            r##"<g class="axis" font-size="11" fill="#333333"><line x1="{x0:.1}" y1="{y0:.1}" x2="{x0:.1}" y2="{y1:.1}" stroke="#333333"/><line x1="{x0:.1}" y1="{y1:.1}" x2="{x1:.1}" y2="{y1:.1}" stroke="#333333"/>"##,
            x0 = self.x0,
            x1 = self.x1,
            y0 = self.y0,
            y1 = self.y1
        );
        for tick in &self.ticks {
            let y = self.y(*tick);
            let _ = write!(
                svg,
                r##"<line x1="{:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#333333"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                self.x0 - 4.0,
                self.x0,
                self.x0 - 7.0,
                y + 4.0,
                tick_label(*tick, step)
            );
        }
        let every = label_every(x_labels.len(), longest(x_labels), self.x1 - self.x0);
        for (i, (label, x)) in x_labels.iter().zip(xs).enumerate() {
            if i % every != 0 {
                continue;
            }
            let _ = write!(
                svg,
                r##"<line x1="{x:.1}" y1="{y1:.1}" x2="{x:.1}" y2="{:.1}" stroke="#333333"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"##,
                self.y1 + 4.0,
                self.y1 + 17.0,
                escape(label),
                y1 = self.y1
            );
        }
        let _ = write!(
            svg,
            r#"<text class="axis-title" x="{:.1}" y="{:.1}" text-anchor="middle" font-size="12">{}</text>"#,
            (self.x0 + self.x1) / 2.0,
            self.y1 + 42.0,
            escape(x_title)
        );
        let mid = (self.y0 + self.y1) / 2.0;
        let _ = write!(
            svg,
            r#"<text class="axis-title" x="16" y="{mid:.1}" text-anchor="middle" font-size="12" transform="rotate(-90 16 {mid:.1})">{}</text></g>"#,
            escape(y_title)
        );
        svg
    }

    fn legend_x(&self) -> f64 {
        WIDTH - RIGHT - LEGEND_WIDTH
    }
}

/// A panel's height: room for the plot and for a legend of `entries` rows.
fn chart_height(entries: usize) -> f64 {
    let legend = entries as f64 * LEGEND_ROW + 12.0;
    TOP + BOTTOM + legend.max(PLOT_MIN_HEIGHT)
}

/// A line chart panel (see [`LineChart`]).
pub fn line_chart(chart: &LineChart) -> Panel {
    let mut entries: Vec<Entry> = Vec::new();
    for series in chart.series {
        if !entries.iter().any(|e| e.label == series.name) {
            entries.push(Entry {
                label: series.name.clone(),
                color: series.color.clone(),
                mark: Mark::Line { dashed: false },
            });
        }
    }
    if let Some((solid, dashed)) = chart.line_styles
        && chart.series.iter().any(|s| s.dashed)
    {
        entries.push(Entry {
            label: format!("solid: {solid}"),
            color: NEUTRAL.into(),
            mark: Mark::Line { dashed: false },
        });
        entries.push(Entry {
            label: format!("dashed: {dashed}"),
            color: NEUTRAL.into(),
            mark: Mark::Line { dashed: true },
        });
    }
    let height = chart_height(entries.len());
    let frame = Frame::new(
        height,
        chart
            .series
            .iter()
            .flat_map(|s| s.values.iter().flatten().copied()),
    );
    let n = chart.x_labels.len();
    let xs: Vec<f64> = (0..n)
        .map(|i| {
            if n < 2 {
                (frame.x0 + frame.x1) / 2.0
            } else {
                frame.x0 + (frame.x1 - frame.x0) * i as f64 / (n - 1) as f64
            }
        })
        .collect();
    let mut body = frame.axes(chart.x_labels, &xs, chart.x_title, chart.y_title);
    // Solid lines first, so the dashed ones of a comparison show over them.
    let mut order: Vec<&Series> = chart.series.iter().collect();
    order.sort_by_key(|s| s.dashed);
    for series in order {
        let color = escape(&series.color);
        let _ = write!(
            body,
            r#"<g class="series"><title>{}</title>"#,
            escape(&series.name)
        );
        let mut path = String::new();
        let mut pen_down = false;
        for (x, value) in xs.iter().zip(&series.values) {
            match value.filter(|v| v.is_finite()) {
                Some(v) => {
                    let _ = write!(
                        path,
                        "{}{x:.1},{:.1}",
                        if pen_down { " L" } else { " M" },
                        frame.y(v)
                    );
                    pen_down = true;
                }
                None => pen_down = false,
            }
        }
        let dash = if series.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        if !path.is_empty() {
            let _ = write!(
                body,
                r#"<path d="{}" fill="none" stroke="{color}" stroke-width="2"{dash}/>"#,
                path.trim_start()
            );
        }
        if n <= 60 {
            for (x, value) in xs.iter().zip(&series.values) {
                if let Some(v) = value.filter(|v| v.is_finite()) {
                    let fill = if series.dashed {
                        "white"
                    } else {
                        color.as_str()
                    };
                    let _ = write!(
                        body,
                        r#"<circle cx="{x:.1}" cy="{:.1}" r="2.5" fill="{fill}" stroke="{color}"/>"#,
                        frame.y(v)
                    );
                }
            }
        }
        body.push_str("</g>");
    }
    body.push_str(&legend(frame.legend_x(), TOP, &entries).0);
    Panel {
        title: chart.title.into(),
        height,
        body,
    }
}

/// A bar chart panel (see [`BarChart`]).
pub fn bar_chart(chart: &BarChart) -> Panel {
    let entries: Vec<Entry> = chart
        .bars
        .iter()
        .map(|b| Entry {
            label: b.name.clone(),
            color: b.color.clone(),
            mark: Mark::Box,
        })
        .collect();
    let height = chart_height(entries.len());
    let frame = Frame::new(
        height,
        chart.bars.iter().flat_map(|b| b.values.iter().copied()),
    );
    let n = chart.x_labels.len().max(1);
    let band = (frame.x1 - frame.x0) / n as f64;
    let xs: Vec<f64> = (0..chart.x_labels.len())
        .map(|i| frame.x0 + band * (i as f64 + 0.5))
        .collect();
    let mut body = frame.axes(chart.x_labels, &xs, chart.x_title, chart.y_title);
    let groups = chart.bars.len().max(1) as f64;
    let bar = band * 0.8 / groups;
    let zero = frame.y(0.0);
    for (s, series) in chart.bars.iter().enumerate() {
        let _ = write!(
            body,
            r#"<g class="series" fill="{}"><title>{}</title>"#,
            escape(&series.color),
            escape(&series.name)
        );
        for (i, (label, value)) in chart.x_labels.iter().zip(&series.values).enumerate() {
            if !value.is_finite() {
                continue;
            }
            let x = frame.x0 + band * i as f64 + band * 0.1 + bar * s as f64;
            let y = frame.y(*value);
            let _ = write!(
                body,
                r#"<rect x="{x:.1}" y="{:.1}" width="{bar:.1}" height="{:.1}"><title>{}: {} {}</title></rect>"#,
                y.min(zero),
                (zero - y).abs(),
                escape(label),
                escape(&series.name),
                cell_value(*value, "")
            );
        }
        body.push_str("</g>");
    }
    body.push_str(&legend(frame.legend_x(), TOP, &entries).0);
    Panel {
        title: chart.title.into(),
        height,
        body,
    }
}

/// The colour of `value` on a diverging scale from red (`min`) through white to blue (`max`).
pub fn diverging_color(value: f64, min: f64, max: f64) -> String {
    const RED: [f64; 3] = [178.0, 24.0, 43.0];
    const WHITE: [f64; 3] = [247.0, 247.0, 247.0];
    const BLUE: [f64; 3] = [33.0, 102.0, 172.0];
    let t = scale_position(value, min, max);
    let (from, to, f) = if t < 0.5 {
        (RED, WHITE, t * 2.0)
    } else {
        (WHITE, BLUE, (t - 0.5) * 2.0)
    };
    let channel = |i: usize| (from[i] + (to[i] - from[i]) * f).round().clamp(0.0, 255.0) as u8;
    format!("#{:02x}{:02x}{:02x}", channel(0), channel(1), channel(2))
}

/// Where `value` lies between `min` (0) and `max` (1), clamped; the middle when the range is
/// empty.
fn scale_position(value: f64, min: f64, max: f64) -> f64 {
    let valid = min.is_finite() && max.is_finite() && max > min;
    if !valid || !value.is_finite() {
        return 0.5;
    }
    ((value - min) / (max - min)).clamp(0.0, 1.0)
}

/// A heat map panel: one cell per row and column, coloured on a diverging scale from `min`
/// (red) through white to `max` (blue), with its value (and `value_suffix`) printed in it; an
/// empty cell for `None`. The rows' labels are at the left, the columns' above, and a colour
/// bar at the right gives the scale's min, middle and max.
pub fn heat_map_panel(
    title: &str,
    rows: Axis,
    cols: Axis,
    values: &[Vec<Option<f64>>],
    min: f64,
    max: f64,
    value_suffix: &str,
) -> Panel {
    const CELL_HEIGHT: f64 = 30.0;
    const BAR_WIDTH: f64 = 16.0;
    const LEGEND_SPACE: f64 = 110.0;
    let row_label_width = (longest(rows.labels) as f64 * CHAR_WIDTH + 12.0).clamp(40.0, 220.0);
    let x0 = 36.0 + row_label_width;
    let ncols = cols.labels.len().max(1);
    let cell_width = ((WIDTH - x0 - RIGHT - LEGEND_SPACE) / ncols as f64).clamp(8.0, 90.0);
    let col_text = longest(cols.labels) as f64 * CHAR_WIDTH;
    let tilted = col_text + 6.0 > cell_width;
    let col_label_height = if tilted { col_text * 0.72 + 12.0 } else { 18.0 };
    let y0 = TOP + 22.0 + col_label_height;
    let nrows = rows.labels.len();
    let grid_height = nrows as f64 * CELL_HEIGHT;
    let bar_height = grid_height.max(120.0);
    let height = y0 + bar_height + 40.0;
    let x1 = x0 + cell_width * ncols as f64;

    let mut body = String::new();
    body.push_str(r#"<g class="cells" font-size="11">"#);
    for (r, row_label) in rows.labels.iter().enumerate() {
        for (c, col_label) in cols.labels.iter().enumerate() {
            let x = x0 + c as f64 * cell_width;
            let y = y0 + r as f64 * CELL_HEIGHT;
            let value = values
                .get(r)
                .and_then(|row| row.get(c))
                .copied()
                .flatten()
                .filter(|v| v.is_finite());
            let (fill, text, ink) = match value {
                Some(v) => {
                    let t = scale_position(v, min, max);
                    let ink = if (t - 0.5).abs() > 0.3 {
                        "white"
                    } else {
                        "#222222"
                    };
                    (
                        diverging_color(v, min, max),
                        cell_value(v, value_suffix),
                        ink,
                    )
                }
                None => ("#eeeeee".to_string(), "–".to_string(), "#888888"),
            };
            let _ = write!(
                body,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{cell_width:.1}" height="{CELL_HEIGHT:.1}" fill="{fill}" stroke="white"><title>{} × {}: {text}</title></rect><text x="{:.1}" y="{:.1}" text-anchor="middle" fill="{ink}">{text}</text>"#,
                escape(row_label),
                escape(col_label),
                x + cell_width / 2.0,
                y + CELL_HEIGHT / 2.0 + 4.0
            );
        }
    }
    body.push_str("</g>");

    body.push_str(r##"<g class="axis" font-size="11" fill="#333333">"##);
    for (r, label) in rows.labels.iter().enumerate() {
        let _ = write!(
            body,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            x0 - 6.0,
            y0 + r as f64 * CELL_HEIGHT + CELL_HEIGHT / 2.0 + 4.0,
            escape(label)
        );
    }
    for (c, label) in cols.labels.iter().enumerate() {
        let x = x0 + c as f64 * cell_width + cell_width / 2.0;
        let y = y0 - 6.0;
        if tilted {
            let _ = write!(
                body,
                r#"<text x="{x:.1}" y="{y:.1}" text-anchor="start" transform="rotate(-45 {x:.1} {y:.1})">{}</text>"#,
                escape(label)
            );
        } else {
            let _ = write!(
                body,
                r#"<text x="{x:.1}" y="{y:.1}" text-anchor="middle">{}</text>"#,
                escape(label)
            );
        }
    }
    let _ = write!(
        body,
        r#"<text class="axis-title" x="{:.1}" y="{:.1}" text-anchor="middle" font-size="12">{}</text>"#,
        (x0 + x1) / 2.0,
        TOP + 10.0,
        escape(cols.title)
    );
    let mid = y0 + grid_height / 2.0;
    let _ = write!(
        body,
        r#"<text class="axis-title" x="16" y="{mid:.1}" text-anchor="middle" font-size="12" transform="rotate(-90 16 {mid:.1})">{}</text></g>"#,
        escape(rows.title)
    );

    // The colour bar: the scale in 20 steps, max at the top.
    let bx = x1 + 28.0;
    body.push_str(r#"<g class="legend" font-size="11">"#);
    let steps = 20;
    let step_height = bar_height / steps as f64;
    for i in 0..steps {
        let t = 1.0 - (i as f64 + 0.5) / steps as f64;
        let value = min + (max - min) * t;
        let _ = write!(
            body,
            r#"<rect x="{bx:.1}" y="{:.1}" width="{BAR_WIDTH:.1}" height="{:.1}" fill="{}"/>"#,
            y0 + i as f64 * step_height,
            step_height + 0.5,
            diverging_color(value, min, max)
        );
    }
    let _ = write!(
        body,
        r##"<rect x="{bx:.1}" y="{y0:.1}" width="{BAR_WIDTH:.1}" height="{bar_height:.1}" fill="none" stroke="#999999"/>"##
    );
    for (value, y) in [
        (max, y0),
        ((min + max) / 2.0, y0 + bar_height / 2.0),
        (min, y0 + bar_height),
    ] {
        let _ = write!(
            body,
            r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
            bx + BAR_WIDTH + 5.0,
            y + 4.0,
            cell_value(value, value_suffix)
        );
    }
    body.push_str("</g>");
    Panel {
        title: title.into(),
        height,
        body,
    }
}

/// A heat map as a document of its own (see [`heat_map_panel`]).
pub fn heat_map(
    title: &str,
    rows: Axis,
    cols: Axis,
    values: &[Vec<Option<f64>>],
    min: f64,
    max: f64,
    value_suffix: &str,
) -> String {
    document(
        title,
        &[heat_map_panel(
            "",
            rows,
            cols,
            values,
            min,
            max,
            value_suffix,
        )],
    )
}

/// One SVG document: `title` at the top (none when empty), then the panels one under the
/// other, each under its own heading.
pub fn document(title: &str, panels: &[Panel]) -> String {
    let head = if title.is_empty() { 12.0 } else { 48.0 };
    let height = head + panels.iter().map(|p| p.height + 8.0).sum::<f64>();
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height:.0}" viewBox="0 0 {WIDTH} {height:.0}" font-family="sans-serif">"#
    );
    svg.push('\n');
    if !title.is_empty() {
        let _ = writeln!(svg, "<title>{}</title>", escape(title));
    }
    svg.push_str("<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
    if !title.is_empty() {
        let _ = writeln!(
            svg,
            r#"<text class="heading" x="{:.1}" y="30" text-anchor="middle" font-size="18" font-weight="bold">{}</text>"#,
            WIDTH / 2.0,
            escape(title)
        );
    }
    let mut y = head;
    for panel in panels {
        let _ = write!(svg, r#"<g class="panel" transform="translate(0 {y:.1})">"#);
        if !panel.title.is_empty() {
            let _ = write!(
                svg,
                r#"<title>{title}</title><text class="heading" x="{LEFT:.1}" y="24" font-size="15" font-weight="bold">{title}</text>"#,
                title = escape(&panel.title)
            );
        }
        svg.push_str(&panel.body);
        svg.push_str("</g>\n");
        y += panel.height + 8.0;
    }
    svg.push_str("</svg>\n");
    svg
}
