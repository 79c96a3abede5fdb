//! The two SVG charts: acceleration per config, and TTFT miss against hit.

use std::fmt::Write as _;

use crate::rank::{ConfigStatus, Ranking};

fn xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A "nice" axis maximum and tick step above `value`.
fn nice_axis(value: f64) -> (f64, f64) {
    let value = if value.is_finite() && value > 0.0 {
        value
    } else {
        1.0
    };
    let raw_step = value / 5.0;
    let magnitude = 10f64.powf(raw_step.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw_step)
        .unwrap_or(10.0 * magnitude);
    ((value / step).ceil() * step, step)
}

struct Frame {
    width: f64,
    height: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
}

impl Frame {
    /// A chart with one slot per config along x, its name slanted below.
    fn per_config(count: usize) -> Frame {
        Frame {
            width: (160.0 + 60.0 * count as f64).max(480.0),
            height: 460.0,
            left: 70.0,
            right: 20.0,
            top: 40.0,
            bottom: 190.0,
        }
    }
    /// The width of one of `count` config slots.
    fn slot_w(&self, count: usize) -> f64 {
        self.plot_w() / count.max(1) as f64
    }
    /// The x of the centre of slot `index`.
    fn slot_center(&self, index: usize, count: usize) -> f64 {
        self.left + self.slot_w(count) * (index as f64 + 0.5)
    }
    fn plot_w(&self) -> f64 {
        self.width - self.left - self.right
    }
    fn plot_h(&self) -> f64 {
        self.height - self.top - self.bottom
    }
    fn y(&self, value: f64, max: f64) -> f64 {
        self.top + self.plot_h() * (1.0 - (value / max).clamp(0.0, 1.0))
    }
}

fn svg_open(frame: &Frame, title: &str, simulated: bool, out: &mut String) {
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#,
        w = frame.width,
        h = frame.height
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let title = if simulated {
        format!("{title} — SIMULATED")
    } else {
        title.to_string()
    };
    let _ = writeln!(
        out,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"#,
        frame.width / 2.0,
        xml(&title)
    );
}

fn y_axis(frame: &Frame, max: f64, step: f64, label: &str, out: &mut String) {
    let mut tick = 0.0;
    while tick <= max + step * 0.01 {
        let y = frame.y(tick, max);
        let _ = writeln!(
            out,
            r##"<line x1="{l}" x2="{r}" y1="{y:.1}" y2="{y:.1}" stroke="#e0e0e0"/><text x="{tx}" y="{ty:.1}" text-anchor="end">{tick}</text>"##,
            l = frame.left,
            r = frame.width - frame.right,
            tx = frame.left - 6.0,
            ty = y + 4.0,
            tick = (tick * 1000.0).round() / 1000.0
        );
        tick += step;
    }
    let _ = writeln!(
        out,
        r##"<line x1="{l}" x2="{l}" y1="{t}" y2="{b}" stroke="#333"/><line x1="{l}" x2="{r}" y1="{b}" y2="{b}" stroke="#333"/>"##,
        l = frame.left,
        r = frame.width - frame.right,
        t = frame.top,
        b = frame.height - frame.bottom
    );
    let _ = writeln!(
        out,
        r#"<text transform="translate(16,{}) rotate(-90)" text-anchor="middle">{}</text>"#,
        frame.top + frame.plot_h() / 2.0,
        xml(label)
    );
}

fn x_label(frame: &Frame, x: f64, text: &str, out: &mut String) {
    let y = frame.height - frame.bottom + 12.0;
    let _ = writeln!(
        out,
        r#"<text transform="translate({x:.1},{y:.1}) rotate(-40)" text-anchor="end" font-size="11">{}</text>"#,
        xml(text)
    );
}

/// Bars of the median acceleration per config with 95 % error bars; valid
/// configs in blue (the champion in green), others grey and marked.
pub fn acceleration_svg(ranking: &Ranking, simulated: bool) -> String {
    let configs = &ranking.configs;
    let frame = Frame::per_config(configs.len());
    let top_value = configs
        .iter()
        .filter_map(|c| c.kv_cache_acceleration.map(|a| a.ci95_high.max(a.median)))
        .fold(1.0, f64::max);
    let (max, step) = nice_axis(top_value * 1.05);
    let mut out = String::new();
    svg_open(
        &frame,
        "KV-cache acceleration per config (median, 95 % interval)",
        simulated,
        &mut out,
    );
    y_axis(
        &frame,
        max,
        step,
        "acceleration (TTFT miss / TTFT hit)",
        &mut out,
    );
    // The no-effect line at ×1.
    let one = frame.y(1.0, max);
    let _ = writeln!(
        out,
        r##"<line x1="{}" x2="{}" y1="{one:.1}" y2="{one:.1}" stroke="#c00" stroke-dasharray="4 3"/>"##,
        frame.left,
        frame.width - frame.right
    );
    let champion = ranking.champion.as_ref().map(|c| &c.id);
    let bar_w = frame.slot_w(configs.len()) * 0.6;
    for (i, c) in configs.iter().enumerate() {
        let center = frame.slot_center(i, configs.len());
        match c.kv_cache_acceleration {
            Some(a) => {
                let fill = if Some(&c.id) == champion {
                    "#2e8b57"
                } else if c.status == ConfigStatus::Valid {
                    "#4682b4"
                } else {
                    "#b0b0b0"
                };
                let y = frame.y(a.median, max);
                let base = frame.height - frame.bottom;
                let _ = writeln!(
                    out,
                    r#"<rect x="{:.1}" y="{y:.1}" width="{bar_w:.1}" height="{:.1}" fill="{fill}"><title>{}: ×{:.2} ({:.2}–{:.2})</title></rect>"#,
                    center - bar_w / 2.0,
                    (base - y).max(0.0),
                    xml(&c.name),
                    a.median,
                    a.ci95_low,
                    a.ci95_high
                );
                let (lo, hi) = (frame.y(a.ci95_low, max), frame.y(a.ci95_high, max));
                let cap = bar_w / 4.0;
                let _ = writeln!(
                    out,
                    r##"<g stroke="#222" stroke-width="1.5"><line x1="{center:.1}" x2="{center:.1}" y1="{lo:.1}" y2="{hi:.1}"/><line x1="{:.1}" x2="{:.1}" y1="{lo:.1}" y2="{lo:.1}"/><line x1="{:.1}" x2="{:.1}" y1="{hi:.1}" y2="{hi:.1}"/></g>"##,
                    center - cap,
                    center + cap,
                    center - cap,
                    center + cap
                );
            }
            None => {
                let base = frame.height - frame.bottom;
                let _ = writeln!(
                    out,
                    r##"<text x="{center:.1}" y="{:.1}" text-anchor="middle" fill="#900">✗</text>"##,
                    base - 6.0
                );
            }
        }
        let label = match c.status {
            ConfigStatus::Valid => c.name.clone(),
            ConfigStatus::Rejected => format!("{} (rejected)", c.name),
            ConfigStatus::Failed => format!("{} (failed)", c.name),
        };
        x_label(&frame, center, &label, &mut out);
    }
    out.push_str("</svg>\n");
    out
}

/// Grouped bars: TTFT of a cold prompt (miss) against the cached
/// conversation (hit), per config.
pub fn ttft_svg(ranking: &Ranking, simulated: bool) -> String {
    let configs = &ranking.configs;
    let frame = Frame::per_config(configs.len());
    let top_value = configs
        .iter()
        .flat_map(|c| [c.secondary.ttft_miss_ms, c.secondary.ttft_hit_ms])
        .flatten()
        .filter(|v| v.is_finite())
        .fold(1.0, f64::max);
    let (max, step) = nice_axis(top_value * 1.05);
    let mut out = String::new();
    svg_open(
        &frame,
        "TTFT: cache miss against cache hit (median ms)",
        simulated,
        &mut out,
    );
    y_axis(&frame, max, step, "time to first token (ms)", &mut out);
    let _ = writeln!(
        out,
        r##"<rect x="{x}" y="30" width="12" height="12" fill="#e07b39"/><text x="{tx}" y="40">miss</text><rect x="{x2}" y="30" width="12" height="12" fill="#4682b4"/><text x="{tx2}" y="40">hit</text>"##,
        x = frame.width - 140.0,
        tx = frame.width - 124.0,
        x2 = frame.width - 80.0,
        tx2 = frame.width - 64.0
    );
    let base = frame.height - frame.bottom;
    let bar_w = frame.slot_w(configs.len()) * 0.3;
    for (i, c) in configs.iter().enumerate() {
        let center = frame.slot_center(i, configs.len());
        for (offset, value, fill, what) in [
            (-bar_w, c.secondary.ttft_miss_ms, "#e07b39", "miss"),
            (0.0, c.secondary.ttft_hit_ms, "#4682b4", "hit"),
        ] {
            if let Some(v) = value.filter(|v| v.is_finite()) {
                let y = frame.y(v, max);
                let _ = writeln!(
                    out,
                    r#"<rect x="{:.1}" y="{y:.1}" width="{bar_w:.1}" height="{:.1}" fill="{fill}"><title>{} {what}: {v:.1} ms</title></rect>"#,
                    center + offset,
                    (base - y).max(0.0),
                    xml(&c.name)
                );
            }
        }
        x_label(&frame, center, &c.name, &mut out);
    }
    out.push_str("</svg>\n");
    out
}
