//! Charts for the HTML reports and the dashboard, as inline SVG: stacked bars (horizontal or
//! vertical), a line, and a Pareto chart. Each has its axes with ticks, the values written on
//! the chart, a legend, and a `<title>`; each drawn element carries its exact value in
//! `data-*` attributes, so a test can read back what was drawn. Geometry is computed with
//! decimals (no floating point), in a 700-unit-wide view box that the page scales to the
//! printable width of an A4 page.
//!
//! Kept small on purpose: four kinds of chart, no interaction, no script.

use rust_decimal::Decimal;

/// The width of every chart's view box.
pub const WIDTH: i64 = 700;

/// Colours that stay apart for the colour-blind and in grey print.
pub const PALETTE: &[&str] = &[
    "#2f855a", "#2b6cb0", "#d69e2e", "#805ad5", "#718096", "#c53030", "#dd6b20", "#319795",
    "#b83280", "#4a5568",
];

const FONT: &str =
    "font-family=\"'Noto Sans CJK SC','WenQuanYi Micro Hei','Microsoft YaHei',sans-serif\"";

pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// How values are written on a chart.
#[derive(Debug, Clone)]
pub enum Unit {
    /// Amounts in `currency` (labels with thousands separators; axis in 万/亿 or K/M/B).
    Money { currency: String, lang: String },
    /// Counts.
    Count { lang: String },
    /// Percentages.
    Percent,
}

impl Unit {
    /// A value in full, as people write it.
    pub fn full(&self, v: Decimal) -> String {
        match self {
            Unit::Money { currency, lang } => {
                let exp = crate::domain::Currency::parse(currency)
                    .map(|c| c.exponent())
                    .unwrap_or(2);
                let mut v = v.round_dp(exp);
                v.rescale(exp);
                super::labels::money(&v.to_string(), currency, lang)
            }
            Unit::Count { .. } => super::labels::grouped(&v.round().to_string()),
            Unit::Percent => format!("{}%", v.round_dp(2)),
        }
    }

    /// A value on an axis: short.
    pub fn short(&self, v: Decimal) -> String {
        let zh = match self {
            Unit::Money { lang, .. } | Unit::Count { lang } => super::labels::is_zh(lang),
            Unit::Percent => return format!("{}%", v.round_dp(1).normalize()),
        };
        let a = v.abs();
        let (div, suffix) = if zh {
            if a >= Decimal::from(100_000_000) {
                (Decimal::from(100_000_000), "亿")
            } else if a >= Decimal::from(10_000) {
                (Decimal::from(10_000), "万")
            } else {
                (Decimal::ONE, "")
            }
        } else if a >= Decimal::from(1_000_000_000) {
            (Decimal::from(1_000_000_000), "B")
        } else if a >= Decimal::from(1_000_000) {
            (Decimal::from(1_000_000), "M")
        } else if a >= Decimal::from(1_000) {
            (Decimal::from(1_000), "K")
        } else {
            (Decimal::ONE, "")
        };
        let n = (v / div).round_dp(if div == Decimal::ONE { 0 } else { 1 });
        format!(
            "{}{suffix}",
            super::labels::grouped(&n.normalize().to_string())
        )
    }
}

/// A "nice" axis maximum and step for values up to `max` (1, 2, 2.5 or 5 times a power of
/// ten, four to six steps).
pub fn nice_axis(max: Decimal) -> (Decimal, Decimal) {
    if max <= Decimal::ZERO {
        return (Decimal::ONE, Decimal::ONE / Decimal::from(4));
    }
    let raw = max / Decimal::from(5);
    let mut pow = Decimal::ONE;
    while pow * Decimal::from(10) <= raw {
        pow *= Decimal::from(10);
    }
    while pow > raw && pow > Decimal::new(1, 6) {
        pow /= Decimal::from(10);
    }
    let step = [
        Decimal::ONE,
        Decimal::from(2),
        Decimal::new(25, 1),
        Decimal::from(5),
        Decimal::from(10),
    ]
    .into_iter()
    .map(|m| m * pow)
    .find(|s| *s * Decimal::from(5) >= max)
    .unwrap_or(pow * Decimal::from(10));
    let mut top = step;
    while top < max {
        top += step;
    }
    (top, step)
}

/// [`nice_axis`] in whole steps (for counts).
pub fn whole_axis(max: Decimal) -> (Decimal, Decimal) {
    let (top, step) = nice_axis(max);
    if step >= Decimal::ONE {
        return (top, step);
    }
    let top = max.ceil().max(Decimal::ONE);
    (top, Decimal::ONE)
}

/// `v / max * len`, rounded to a tenth of a unit.
fn scale(v: Decimal, max: Decimal, len: i64) -> Decimal {
    if max <= Decimal::ZERO {
        return Decimal::ZERO;
    }
    (v * Decimal::from(len) / max).round_dp(1)
}

/// The rough width of a text in view-box units (CJK characters count double).
fn text_width(s: &str, size: i64) -> i64 {
    let units: i64 = s
        .chars()
        .map(|c| if c.is_ascii() { 6 } else { 11 })
        .sum::<i64>();
    units * size / 11
}

/// One series of a bar chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Its machine name (in `data-series`).
    pub key: String,
    /// Its name in the legend.
    pub name: String,
    pub color: String,
    /// One value per category (negative values are not drawn, but are written).
    pub values: Vec<Decimal>,
}

/// Stacked bars: one bar per category, one segment per series.
#[derive(Debug, Clone)]
pub struct Bars {
    pub title: String,
    pub categories: Vec<String>,
    pub series: Vec<Series>,
    pub horizontal: bool,
    pub unit: Unit,
    /// Written at the end of each bar instead of its total.
    pub end_labels: Option<Vec<String>>,
    /// The axis title.
    pub axis: String,
}

fn legend(series: &[Series], y: i64, unit: &Unit, totals: bool) -> (String, i64) {
    let mut out = String::new();
    let (mut x, mut row) = (10i64, 0i64);
    for s in series {
        let label = if totals {
            format!(
                "{} {}",
                s.name,
                unit.full(s.values.iter().copied().sum::<Decimal>())
            )
        } else {
            s.name.clone()
        };
        let w = 16 + text_width(&label, 11) + 18;
        if x + w > WIDTH - 10 && x > 10 {
            x = 10;
            row += 1;
        }
        let yy = y + row * 18;
        out.push_str(&format!(
            "<g class=\"legend\" data-series=\"{}\"><rect x=\"{x}\" y=\"{}\" width=\"11\" height=\"11\" fill=\"{}\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"11\">{}</text></g>",
            esc(&s.key),
            yy - 9,
            s.color,
            x + 15,
            yy,
            esc(&label)
        ));
        x += w;
    }
    (out, (row + 1) * 18)
}

fn open_svg(height: i64, title: &str, kind: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart {kind}\" viewBox=\"0 0 {WIDTH} {height}\" \
         width=\"{WIDTH}\" height=\"{height}\" role=\"img\" aria-label=\"{t}\" {FONT}>\
         <title>{t}</title><text x=\"10\" y=\"18\" font-size=\"14\" font-weight=\"bold\" class=\"chart-title\">{t}</text>",
        t = esc(title)
    )
}

impl Bars {
    /// The SVG, or "" when there is nothing to draw.
    pub fn svg(&self) -> String {
        if self.categories.is_empty() || self.series.is_empty() {
            return String::new();
        }
        let n = self.categories.len();
        let totals: Vec<Decimal> = (0..n)
            .map(|i| {
                self.series
                    .iter()
                    .map(|s| {
                        s.values
                            .get(i)
                            .copied()
                            .unwrap_or_default()
                            .max(Decimal::ZERO)
                    })
                    .sum()
            })
            .collect();
        let max = totals.iter().copied().max().unwrap_or_default();
        let (top, step) = match self.unit {
            Unit::Count { .. } => whole_axis(max),
            _ => nice_axis(max),
        };
        let (leg, leg_h) = legend(&self.series, 40, &self.unit, self.series.len() > 1);
        if self.horizontal {
            self.horizontal_svg(&totals, top, step, &leg, leg_h)
        } else {
            self.vertical_svg(&totals, top, step, &leg, leg_h)
        }
    }

    fn end_label(&self, i: usize, total: Decimal) -> String {
        match &self.end_labels {
            Some(l) => l.get(i).cloned().unwrap_or_default(),
            None => self.unit.full(total),
        }
    }

    fn horizontal_svg(
        &self,
        totals: &[Decimal],
        top: Decimal,
        step: Decimal,
        leg: &str,
        leg_h: i64,
    ) -> String {
        let label_w = self
            .categories
            .iter()
            .map(|c| text_width(c, 11))
            .max()
            .unwrap_or(40)
            .clamp(40, 170)
            + 14;
        let end_w = (0..self.categories.len())
            .map(|i| text_width(&self.end_label(i, totals[i]), 11))
            .max()
            .unwrap_or(60)
            + 12;
        let x0 = label_w;
        let plot_w = (WIDTH - x0 - end_w - 10).max(200);
        let (bar_h, gap) = (22i64, 12i64);
        let y0 = 40 + leg_h + 4;
        let plot_h = self.categories.len() as i64 * (bar_h + gap);
        let height = y0 + plot_h + 40;
        let mut s = open_svg(height, &self.title, "bars horizontal");
        s.push_str(leg);
        // grid and ticks
        let mut t = Decimal::ZERO;
        while t <= top {
            let x = Decimal::from(x0) + scale(t, top, plot_w);
            s.push_str(&format!(
                "<line x1=\"{x}\" y1=\"{y0}\" x2=\"{x}\" y2=\"{}\" stroke=\"#d5dae1\" stroke-width=\"1\"/>\
                 <text x=\"{x}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\" class=\"tick\">{}</text>",
                y0 + plot_h,
                y0 + plot_h + 14,
                esc(&self.unit.short(t))
            ));
            t += step;
        }
        s.push_str(&format!(
            "<line x1=\"{x0}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#333\"/>\
             <line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x0}\" y2=\"{}\" stroke=\"#333\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\" class=\"axis-title\">{}</text>",
            y0 + plot_h,
            x0 + plot_w,
            y0 + plot_h,
            y0 + plot_h,
            x0 + plot_w / 2,
            y0 + plot_h + 30,
            esc(&self.axis)
        ));
        for (i, cat) in self.categories.iter().enumerate() {
            let y = y0 + i as i64 * (bar_h + gap) + gap / 2;
            s.push_str(&format!(
                "<text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"end\" class=\"category\">{}</text>",
                x0 - 6,
                y + bar_h / 2 + 4,
                esc(cat)
            ));
            let mut x = Decimal::from(x0);
            for se in &self.series {
                let v = se.values.get(i).copied().unwrap_or_default();
                let w = scale(v.max(Decimal::ZERO), top, plot_w);
                s.push_str(&format!(
                    "<rect class=\"seg\" data-category=\"{}\" data-series=\"{}\" data-value=\"{v}\" x=\"{x}\" y=\"{y}\" width=\"{w}\" height=\"{bar_h}\" fill=\"{}\"><title>{}: {} {}</title></rect>",
                    esc(cat),
                    esc(&se.key),
                    se.color,
                    esc(cat),
                    esc(&se.name),
                    esc(&self.unit.full(v))
                ));
                let label = self.unit.short(v);
                if v > Decimal::ZERO && Decimal::from(text_width(&label, 10) + 6) < w {
                    s.push_str(&format!(
                        "<text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#fff\" class=\"seg-label\">{}</text>",
                        x + w / Decimal::from(2),
                        y + bar_h / 2 + 4,
                        esc(&label)
                    ));
                }
                x += w;
            }
            s.push_str(&format!(
                "<text x=\"{}\" y=\"{}\" font-size=\"11\" class=\"total\" data-category=\"{}\" data-value=\"{}\">{}</text>",
                x + Decimal::from(6),
                y + bar_h / 2 + 4,
                esc(cat),
                totals[i],
                esc(&self.end_label(i, totals[i]))
            ));
        }
        s.push_str("</svg>");
        s
    }

    fn vertical_svg(
        &self,
        totals: &[Decimal],
        top: Decimal,
        step: Decimal,
        leg: &str,
        leg_h: i64,
    ) -> String {
        let x0 = 64i64;
        let plot_w = WIDTH - x0 - 16;
        let y0 = 40 + leg_h + 18;
        let plot_h = 220i64;
        let n = self.categories.len() as i64;
        let slot = plot_w / n.max(1);
        let bar_w = (slot * 3 / 5).clamp(8, 90);
        let height = y0 + plot_h + 52;
        let mut s = open_svg(height, &self.title, "bars vertical");
        s.push_str(leg);
        let mut t = Decimal::ZERO;
        while t <= top {
            let y = Decimal::from(y0 + plot_h) - scale(t, top, plot_h);
            s.push_str(&format!(
                "<line x1=\"{x0}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#d5dae1\"/>\
                 <text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"end\" class=\"tick\">{}</text>",
                x0 + plot_w,
                x0 - 4,
                y + Decimal::from(3),
                esc(&self.unit.short(t))
            ));
            t += step;
        }
        s.push_str(&format!(
            "<line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x0}\" y2=\"{}\" stroke=\"#333\"/>\
             <line x1=\"{x0}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#333\"/>\
             <text x=\"12\" y=\"{}\" font-size=\"10\" class=\"axis-title\">{}</text>",
            y0 + plot_h,
            y0 + plot_h,
            x0 + plot_w,
            y0 + plot_h,
            y0 - 8,
            esc(&self.axis)
        ));
        for (i, cat) in self.categories.iter().enumerate() {
            let x = x0 + i as i64 * slot + (slot - bar_w) / 2;
            let mut y = Decimal::from(y0 + plot_h);
            for se in &self.series {
                let v = se.values.get(i).copied().unwrap_or_default();
                let h = scale(v.max(Decimal::ZERO), top, plot_h);
                y -= h;
                s.push_str(&format!(
                    "<rect class=\"seg\" data-category=\"{}\" data-series=\"{}\" data-value=\"{v}\" x=\"{x}\" y=\"{y}\" width=\"{bar_w}\" height=\"{h}\" fill=\"{}\"><title>{}: {} {}</title></rect>",
                    esc(cat),
                    esc(&se.key),
                    se.color,
                    esc(cat),
                    esc(&se.name),
                    esc(&self.unit.full(v))
                ));
                let label = self.unit.short(v);
                if v > Decimal::ZERO && h >= Decimal::from(14) && text_width(&label, 10) + 4 < bar_w
                {
                    s.push_str(&format!(
                        "<text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#fff\" class=\"seg-label\">{}</text>",
                        x + bar_w / 2,
                        y + h / Decimal::from(2) + Decimal::from(4),
                        esc(&label)
                    ));
                }
            }
            s.push_str(&format!(
                "<text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\" class=\"total\" data-category=\"{}\" data-value=\"{}\">{}</text>\
                 <text x=\"{}\" y=\"{}\" font-size=\"11\" text-anchor=\"middle\" class=\"category\">{}</text>",
                x + bar_w / 2,
                y - Decimal::from(4),
                esc(cat),
                totals[i],
                esc(&self.unit.short(totals[i])),
                x + bar_w / 2,
                y0 + plot_h + 16,
                esc(cat)
            ));
        }
        s.push_str("</svg>");
        s
    }
}

/// A line over days (or any ordered labels), with an optional guide line.
#[derive(Debug, Clone)]
pub struct Line {
    pub title: String,
    /// The x labels (dates as `YYYY-MM-DD` are written `MM-DD`).
    pub xs: Vec<String>,
    pub ys: Vec<Option<Decimal>>,
    pub unit: Unit,
    /// The series' name in the legend.
    pub name: String,
    pub color: String,
    /// The y axis runs to at least this (e.g. 100 for a percentage).
    pub y_min_top: Decimal,
    pub axis: String,
    /// Steps (the value holds until the next point), not slopes.
    pub step: bool,
}

fn short_x(x: &str) -> String {
    if x.len() == 10 && x.as_bytes()[4] == b'-' {
        x[5..].to_string()
    } else {
        x.to_string()
    }
}

impl Line {
    pub fn svg(&self) -> String {
        let points: Vec<(usize, Decimal)> = self
            .ys
            .iter()
            .enumerate()
            .filter_map(|(i, y)| y.map(|y| (i, y)))
            .collect();
        if points.is_empty() {
            return String::new();
        }
        let max = points
            .iter()
            .map(|p| p.1)
            .max()
            .unwrap_or_default()
            .max(self.y_min_top);
        let (top, step) = nice_axis(max);
        let (x0, y0, plot_w, plot_h) = (64i64, 62i64, WIDTH - 64 - 24, 220i64);
        let height = y0 + plot_h + 56;
        let mut s = open_svg(height, &self.title, "line");
        let (leg, _) = legend(
            &[Series {
                key: "line".into(),
                name: self.name.clone(),
                color: self.color.clone(),
                values: vec![],
            }],
            40,
            &self.unit,
            false,
        );
        s.push_str(&leg);
        let mut t = Decimal::ZERO;
        while t <= top {
            let y = Decimal::from(y0 + plot_h) - scale(t, top, plot_h);
            s.push_str(&format!(
                "<line x1=\"{x0}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#d5dae1\"/>\
                 <text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"end\" class=\"tick\">{}</text>",
                x0 + plot_w,
                x0 - 4,
                y + Decimal::from(3),
                esc(&self.unit.short(t))
            ));
            t += step;
        }
        let n = self.xs.len().max(1) as i64;
        let px = |i: usize| -> Decimal {
            if n == 1 {
                Decimal::from(x0 + plot_w / 2)
            } else {
                Decimal::from(x0) + scale(Decimal::from(i as i64), Decimal::from(n - 1), plot_w)
            }
        };
        let py = |v: Decimal| Decimal::from(y0 + plot_h) - scale(v.max(Decimal::ZERO), top, plot_h);
        s.push_str(&format!(
            "<line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x0}\" y2=\"{}\" stroke=\"#333\"/>\
             <line x1=\"{x0}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#333\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\" class=\"axis-title\">{}</text>",
            y0 + plot_h,
            y0 + plot_h,
            x0 + plot_w,
            y0 + plot_h,
            x0 + plot_w / 2,
            y0 + plot_h + 44,
            esc(&self.axis)
        ));
        // x labels: at most about ten
        let every = (self.xs.len() / 10).max(1);
        for (i, x) in self.xs.iter().enumerate() {
            if i % every == 0 || i + 1 == self.xs.len() {
                s.push_str(&format!(
                    "<text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\" class=\"category\">{}</text>",
                    px(i),
                    y0 + plot_h + 16,
                    esc(&short_x(x))
                ));
            }
        }
        let mut path: Vec<String> = Vec::new();
        for (k, (i, v)) in points.iter().enumerate() {
            if self.step && k > 0 {
                path.push(format!("{},{}", px(*i), py(points[k - 1].1)));
            }
            path.push(format!("{},{}", px(*i), py(*v)));
        }
        if self.step {
            if let Some((_, v)) = points.last() {
                path.push(format!(
                    "{},{}",
                    px(self.xs.len().saturating_sub(1)),
                    py(*v)
                ));
            }
        }
        s.push_str(&format!(
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>",
            path.join(" "),
            self.color
        ));
        let label_every = (points.len() / 8).max(1);
        for (k, (i, v)) in points.iter().enumerate() {
            s.push_str(&format!(
                "<circle class=\"pt\" data-x=\"{}\" data-value=\"{v}\" cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"{}\"><title>{}: {}</title></circle>",
                esc(&self.xs[*i]),
                px(*i),
                py(*v),
                self.color,
                esc(&self.xs[*i]),
                esc(&self.unit.full(*v))
            ));
            if k % label_every == 0 || k + 1 == points.len() {
                s.push_str(&format!(
                    "<text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\" class=\"pt-label\">{}</text>",
                    px(*i),
                    py(*v) - Decimal::from(7),
                    esc(&self.unit.full(*v))
                ));
            }
        }
        s.push_str("</svg>");
        s
    }
}

/// A Pareto chart: bars of each item's value, largest first, the cumulative share as a line,
/// and the 80 % line. More than [`PARETO_BARS`] items are drawn as that many groups.
#[derive(Debug, Clone)]
pub struct Pareto {
    pub title: String,
    /// (label, value, cumulative share in %) largest first, as the report gives them.
    pub items: Vec<(String, Decimal, Decimal)>,
    pub unit: Unit,
    pub bar_name: String,
    pub line_name: String,
    pub guide_name: String,
    pub axis: String,
}

pub const PARETO_BARS: usize = 100;

impl Pareto {
    pub fn svg(&self) -> String {
        if self.items.is_empty() {
            return String::new();
        }
        // groups of consecutive items when there are many
        let per = self.items.len().div_ceil(PARETO_BARS);
        let mut bars: Vec<(String, Decimal, Decimal)> = Vec::new(); // label, value, cumulative %
        for (g, chunk) in self.items.chunks(per).enumerate() {
            let v: Decimal = chunk.iter().map(|i| i.1).sum();
            let label = if per == 1 {
                chunk[0].0.clone()
            } else {
                format!("{}-{}", g * per + 1, g * per + chunk.len())
            };
            bars.push((label, v, chunk[chunk.len() - 1].2));
        }
        let max = bars.iter().map(|b| b.1).max().unwrap_or_default();
        let (top, step) = nice_axis(max);
        let (x0, y0, plot_w, plot_h) = (64i64, 62i64, WIDTH - 64 - 52, 220i64);
        let height = y0 + plot_h + 60;
        let mut s = open_svg(height, &self.title, "pareto");
        let series = [
            Series {
                key: "bar".into(),
                name: self.bar_name.clone(),
                color: PALETTE[1].into(),
                values: vec![],
            },
            Series {
                key: "cumulative".into(),
                name: self.line_name.clone(),
                color: PALETTE[5].into(),
                values: vec![],
            },
            Series {
                key: "guide".into(),
                name: self.guide_name.clone(),
                color: "#444".into(),
                values: vec![],
            },
        ];
        let (leg, _) = legend(&series, 40, &self.unit, false);
        s.push_str(&leg);
        let mut t = Decimal::ZERO;
        while t <= top {
            let y = Decimal::from(y0 + plot_h) - scale(t, top, plot_h);
            s.push_str(&format!(
                "<line x1=\"{x0}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#d5dae1\"/>\
                 <text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"end\" class=\"tick\">{}</text>",
                x0 + plot_w,
                x0 - 4,
                y + Decimal::from(3),
                esc(&self.unit.short(t))
            ));
            t += step;
        }
        // the right axis: 0 to 100 %
        for p in (0..=100).step_by(20) {
            let y =
                Decimal::from(y0 + plot_h) - scale(Decimal::from(p), Decimal::from(100), plot_h);
            s.push_str(&format!(
                "<text x=\"{}\" y=\"{}\" font-size=\"10\" class=\"tick-right\">{p}%</text>",
                x0 + plot_w + 4,
                y + Decimal::from(3)
            ));
        }
        s.push_str(&format!(
            "<line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x0}\" y2=\"{}\" stroke=\"#333\"/>\
             <line x1=\"{}\" y1=\"{y0}\" x2=\"{}\" y2=\"{}\" stroke=\"#333\"/>\
             <line x1=\"{x0}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#333\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\" class=\"axis-title\">{}</text>",
            y0 + plot_h,
            x0 + plot_w,
            x0 + plot_w,
            y0 + plot_h,
            y0 + plot_h,
            x0 + plot_w,
            y0 + plot_h,
            x0 + plot_w / 2,
            y0 + plot_h + 46,
            esc(&self.axis)
        ));
        let n = bars.len() as i64;
        let slot = Decimal::from(plot_w) / Decimal::from(n);
        let bar_w = (slot * Decimal::new(8, 1))
            .round_dp(1)
            .clamp(Decimal::ONE, Decimal::from(60));
        let every = (bars.len() / 8).max(1);
        // the curve starts at nothing
        let mut path = vec![format!("{x0},{}", y0 + plot_h)];
        for (i, (label, v, c)) in bars.iter().enumerate() {
            let x = Decimal::from(x0)
                + slot * Decimal::from(i as i64)
                + (slot - bar_w) / Decimal::from(2);
            let h = scale(*v, top, plot_h);
            // the share so far is reached at the end of the item's slot
            let cx = (Decimal::from(x0) + slot * Decimal::from(i as i64 + 1)).round_dp(1);
            let cy = Decimal::from(y0 + plot_h) - scale(*c, Decimal::from(100), plot_h);
            s.push_str(&format!(
                "<rect class=\"bar\" data-label=\"{}\" data-value=\"{v}\" x=\"{}\" y=\"{}\" width=\"{bar_w}\" height=\"{h}\" fill=\"{}\"><title>{}: {}</title></rect>",
                esc(label),
                x.round_dp(1),
                Decimal::from(y0 + plot_h) - h,
                PALETTE[1],
                esc(label),
                esc(&self.unit.full(*v))
            ));
            s.push_str(&format!(
                "<circle class=\"cum\" data-label=\"{}\" data-value=\"{c}\" cx=\"{cx}\" cy=\"{cy}\" r=\"2.5\" fill=\"{}\"><title>{}: {c}%</title></circle>",
                esc(label),
                PALETTE[5],
                esc(label)
            ));
            path.push(format!("{cx},{cy}"));
            // the last slot too, unless it would crowd the one labelled before it
            if i % every == 0 || (i + 1 == bars.len() && i % every > every / 2) {
                // the rank of the slot's first item
                s.push_str(&format!(
                    "<text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"middle\" class=\"category\">{}</text>",
                    (x + bar_w / Decimal::from(2)).round_dp(1),
                    y0 + plot_h + 14,
                    i * per + 1
                ));
            }
        }
        s.push_str(&format!(
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"2\"/>",
            path.join(" "),
            PALETTE[5]
        ));
        if let Some((_, _, last)) = bars.last() {
            s.push_str(&format!(
                "<text x=\"{}\" y=\"{}\" font-size=\"10\" text-anchor=\"end\" class=\"pt-label\">{last}%</text>",
                x0 + plot_w - 2,
                Decimal::from(y0 + plot_h) - scale(*last, Decimal::from(100), plot_h) - Decimal::from(6)
            ));
        }
        let gy = Decimal::from(y0 + plot_h) - scale(Decimal::from(80), Decimal::from(100), plot_h);
        s.push_str(&format!(
            "<line class=\"guide\" data-value=\"80\" x1=\"{x0}\" y1=\"{gy}\" x2=\"{}\" y2=\"{gy}\" stroke=\"#444\" stroke-dasharray=\"6 4\"/>\
             <text x=\"{}\" y=\"{}\" font-size=\"11\" font-weight=\"bold\" text-anchor=\"middle\" stroke=\"#fff\" stroke-width=\"3\" paint-order=\"stroke\" class=\"guide-label\">80%</text>",
            x0 + plot_w,
            x0 + plot_w / 2,
            gy - Decimal::from(4)
        ));
        s.push_str("</svg>");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    #[test]
    fn axes_end_on_a_round_number_above_the_largest_value() {
        assert_eq!(nice_axis(d("87")), (d("100"), d("20")));
        assert_eq!(nice_axis(d("100")), (d("100"), d("20")));
        assert_eq!(nice_axis(d("14482569.47")), (d("15000000"), d("5000000")));
        assert_eq!(nice_axis(d("3")), (d("3"), d("1")));
        assert_eq!(nice_axis(Decimal::ZERO).0, Decimal::ONE);
        assert_eq!(whole_axis(d("1")), (d("1"), d("1")));
        assert_eq!(whole_axis(d("3")), (d("3"), d("1")));
        assert_eq!(whole_axis(d("40")), (d("40"), d("10")));
        let m = Unit::Money {
            currency: "CNY".into(),
            lang: "zh".into(),
        };
        assert_eq!(m.short(d("15000000")), "1,500万");
        assert_eq!(m.short(d("250000000")), "2.5亿");
        assert_eq!(m.full(d("1234.5")), "¥1,234.50");
        let e = Unit::Money {
            currency: "CNY".into(),
            lang: "en".into(),
        };
        assert_eq!(e.short(d("2500000")), "2.5M");
    }

    #[test]
    fn stacked_bars_carry_each_value_and_are_proportional() {
        let b = Bars {
            title: "Where <the> money went".into(),
            categories: vec!["ICBC CNY".into(), "CMB CNY".into()],
            series: vec![
                Series {
                    key: "applied".into(),
                    name: "Applied".into(),
                    color: PALETTE[0].into(),
                    values: vec![d("300"), d("50")],
                },
                Series {
                    key: "held".into(),
                    name: "Held".into(),
                    color: PALETTE[2].into(),
                    values: vec![d("100"), d("-5")],
                },
            ],
            horizontal: true,
            unit: Unit::Count { lang: "en".into() },
            end_labels: None,
            axis: "amount".into(),
        };
        let svg = b.svg();
        assert!(svg.contains("Where &lt;the&gt; money went"));
        assert!(
            svg.contains("data-category=\"ICBC CNY\" data-series=\"applied\" data-value=\"300\"")
        );
        assert!(svg.contains("data-series=\"held\" data-value=\"-5\""));
        // the axis runs to 400 = the longest bar; 300 of 400 is three quarters of the plot
        assert!(svg.contains("class=\"total\" data-category=\"ICBC CNY\" data-value=\"400\""));
        let v = Bars {
            horizontal: false,
            ..b.clone()
        }
        .svg();
        assert!(v.contains("class=\"chart bars vertical\""));
        assert!(Bars {
            categories: vec![],
            ..b
        }
        .svg()
        .is_empty());
    }

    #[test]
    fn a_pareto_chart_ends_at_the_share_its_items_make_and_draws_the_80_line() {
        let p = Pareto {
            title: "t".into(),
            items: vec![
                ("A".into(), d("60"), d("60.00")),
                ("B".into(), d("25"), d("85.00")),
            ],
            unit: Unit::Count { lang: "zh".into() },
            bar_name: "billed".into(),
            line_name: "cumulative".into(),
            guide_name: "80".into(),
            axis: "customers".into(),
        };
        let svg = p.svg();
        assert!(svg.contains("class=\"cum\" data-label=\"A\" data-value=\"60.00\""));
        assert!(svg.contains("class=\"cum\" data-label=\"B\" data-value=\"85.00\""));
        assert!(svg.contains("class=\"guide\" data-value=\"80\""));
        let many = Pareto {
            items: (0..250)
                .map(|i| (format!("C{i}"), d("1"), Decimal::from(i + 1) * d("0.4")))
                .collect(),
            ..p
        };
        let svg = many.svg();
        assert_eq!(svg.matches("class=\"bar\"").count(), 84, "groups of three");
        assert!(svg.contains("class=\"cum\" data-label=\"250-250\" data-value=\"100.0\""));
    }

    #[test]
    fn a_line_marks_every_point_with_its_value() {
        let l = Line {
            title: "rate".into(),
            xs: vec!["2026-11-01".into(), "2026-11-02".into()],
            ys: vec![Some(d("40.00")), Some(d("85.20"))],
            unit: Unit::Percent,
            name: "rate".into(),
            color: PALETTE[1].into(),
            y_min_top: d("100"),
            axis: "day".into(),
            step: false,
        };
        let svg = l.svg();
        assert!(svg.contains("data-x=\"2026-11-02\" data-value=\"85.20\""));
        assert!(svg.contains(">11-01<"));
        assert!(svg.contains(">85.20%<"));
    }
}
